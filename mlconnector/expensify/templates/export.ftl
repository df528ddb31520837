<#ftl strip_whitespace=true>
<#--
  mlconnector-export v1: one JSON object per report per line (JSON Lines), then a trailer line
  {"end":true,"reports":N}. The trailer tells a finished file from a truncated one, and an empty
  export from a download that is not ready yet (which answers with an empty body).

  Every value goes through a macro: strings with ?json_string (not ?js_string, which writes \' and
  breaks JSON), numbers with ?c (no locale grouping), booleans as true/false, and a missing value as
  "" or null instead of aborting the render. Amounts stay in integer cents; Python picks the
  effective amount and the sign. Tags are printed as Expensify stores them (levels joined by ':',
  a literal colon escaped as \:); ?json_string turns that backslash into a legal \\.
  cardID and cardNumber (the company card of a card expense) are in Expensify's older field list
  only: unverified, so a missing one prints "" and Python keeps whichever it can use. receiptURL is
  receiptObject.url, which "can be empty sometimes": a missing one prints "". reimbursed (the date the
  employee was paid) and isACHReimbursed are in the documented field list; their formats are unverified.
-->
<#macro s v><#if v?is_string>"${v?json_string}"<#elseif v?is_number>"${v?c}"<#elseif v?is_boolean>"${v?string("true", "false")}"<#elseif v?is_date_like>"${v?datetime_if_unknown?string("yyyy-MM-dd HH:mm:ss")}"<#else>""</#if></#macro>
<#macro n v><#if v?is_number>${v?c}<#elseif v?is_string && v?trim?has_content>"${v?json_string}"<#else>null</#if></#macro>
<#macro b v><#if v?is_boolean>${v?string("true", "false")}<#elseif v?is_string && v?trim?has_content>"${v?json_string}"<#else>null</#if></#macro>
<#list reports as report>
{"reportID":<@s (report.reportID)!"" />,<#t>
"reportName":<@s (report.reportName)!"" />,<#t>
"status":<@s (report.status)!"" />,<#t>
"accountEmail":<@s (report.accountEmail)!"" />,<#t>
"submitterName":<@s (report.submitter.fullName)!"" />,<#t>
"currency":<@s (report.currency)!"" />,<#t>
"total":<@n (report.total)!"" />,<#t>
"policyID":<@s (report.policyID)!"" />,<#t>
"policyName":<@s (report.policyName)!"" />,<#t>
"created":<@s (report.created)!"" />,<#t>
"submitted":<@s (report.submitted)!"" />,<#t>
"approved":<@s (report.approved)!"" />,<#t>
"reimbursed":<@s (report.reimbursed)!"" />,<#t>
"isACHReimbursed":<@b (report.isACHReimbursed)!"" />,<#t>
"reportFields":{<#-- REPORT FIELDS -->},<#t>
"expenses":[<#t>
<#list (report.transactionList)![] as expense>
{"transactionID":<@s (expense.transactionID)!"" />,<#t>
"created":<@s (expense.created)!"" />,<#t>
"modifiedCreated":<@s (expense.modifiedCreated)!"" />,<#t>
"merchant":<@s (expense.merchant)!"" />,<#t>
"modifiedMerchant":<@s (expense.modifiedMerchant)!"" />,<#t>
"amount":<@n (expense.amount)!"" />,<#t>
"modifiedAmount":<@n (expense.modifiedAmount)!"" />,<#t>
"convertedAmount":<@n (expense.convertedAmount)!"" />,<#t>
"currency":<@s (expense.currency)!"" />,<#t>
"category":<@s (expense.category)!"" />,<#t>
"tag":<@s (expense.tag)!"" />,<#t>
"comment":<@s (expense.comment)!"" />,<#t>
"cardID":<@s (expense.cardID)!"" />,<#t>
"cardNumber":<@s (expense.cardNumber)!"" />,<#t>
"receiptURL":<@s (expense.receiptObject.url)!"" />,<#t>
"reimbursable":<@b (expense.reimbursable)!"" />,<#t>
"billable":<@b (expense.billable)!"" />}<#sep>,</#sep><#t>
</#list>
]}${"\n"}<#t>
</#list>
{"end":true,"reports":${reports?size?c}}${"\n"}<#t>
